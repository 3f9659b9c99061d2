# sim5360-bridge in a container: pass the modem's AT port in as /dev/sim5360-at (the
# default port; on the host the udev rule systemd/99-sim5360-bridge.rules gives it that name).
#   docker build -t sim5360-bridge .
#   docker run --device /dev/sim5360-at -v /etc/sim5360-bridge:/config:ro \
#     -e SIM5360_CONFIG=/config/config.toml -v sim5360-state:/var/lib/sim5360-bridge sim5360-bridge
# or with a broker beside it: config/compose.yaml.
FROM python:3.11-slim

RUN useradd --system --home /var/lib/sim5360-bridge --groups dialout bridge \
 && mkdir -p /var/lib/sim5360-bridge/files /var/lib/sim5360-bridge/state \
 && chown -R bridge /var/lib/sim5360-bridge

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install --no-cache-dir . && rm -rf /src

USER bridge
WORKDIR /var/lib/sim5360-bridge
# JSON log lines (no TTY) for `docker logs`
ENTRYPOINT ["sim5360-bridge"]
CMD ["run"]
# Healthy while the daemon's heartbeat (in state_dir, written by its main loop) is fresh
# and it is connected to the broker; `health` reads the same config as `run`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["sim5360-bridge", "health"]
