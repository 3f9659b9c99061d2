# sim5360-bridge in a container: pass the modem's serial port with --device.
#   docker build -t sim5360-bridge .
#   docker run --device /dev/ttyUSB2 -v /etc/sim5360-bridge:/config:ro \
#     -e SIM5360_CONFIG=/config/config.toml -v sim5360-state:/var/lib/sim5360-bridge sim5360-bridge
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
HEALTHCHECK --interval=60s --timeout=10s CMD ["sim5360-bridge", "check-config"]
