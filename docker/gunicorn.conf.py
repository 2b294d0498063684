"""Settings every container wants; anything here can be overridden.

Precedence: this file < ``GUNICORN_CMD_ARGS`` < the command line. ``bind`` and ``workers``
are deliberately not set: their defaults read ``PORT`` (``0.0.0.0:$PORT``) and
``WEB_CONCURRENCY`` (the image sets ``PORT=8000``; one worker unless ``WEB_CONCURRENCY``
says otherwise: one process per container scales well under an orchestrator).
"""

# The heartbeat file lives in memory: on an overlay /tmp its updates can stall and cause
# spurious WORKER TIMEOUTs.
worker_tmp_dir = "/dev/shm"

# Logs go to the container's stdout (access) and stderr (errors).
accesslog = "-"
errorlog = "-"

# Load balancers keep idle connections open for about a minute: stay open a little longer
# than that so the balancer, not gunicorn, closes idle connections (no spurious 502s).
keepalive = 75
