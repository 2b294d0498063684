"""The hostile HTTP/1.1 battery against the sync worker (see ``hostile_battery``)."""

from tests.reliability.hostile_battery import RULE_RE, battery_test, corpus_rules, server_fixture

battery = server_fixture("sync")
test_hostile_h1 = battery_test("sync")


def test_every_case_states_its_rule() -> None:
    rules = corpus_rules()
    assert len(rules) >= 290
    missing = [name for name, rule in rules.items() if not RULE_RE.search(rule)]
    assert not missing, f"cases without an RFC rule: {missing}"
