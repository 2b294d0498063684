"""The hostile HTTP/1.1 battery against the asgi worker (see ``hostile_battery``)."""

from tests.reliability.hostile_battery import battery_test, server_fixture

battery = server_fixture("asgi")
test_hostile_h1 = battery_test("asgi")
