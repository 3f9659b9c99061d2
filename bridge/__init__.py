"""sim5360-bridge: a SIMCom SIM5360's internet services on MQTT."""

__version__ = "0.1.0"
