"""The emulated module's internet services, one module per seed chapter; each
defines ``SERVICE``, a class following `bridge.emulator.api.Service`."""
