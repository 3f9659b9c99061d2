"""The module's services, one module per seed chapter (smtp, pop3, ftp, ftps, http,
https) plus efs (module files), info (status) and control (raw AT, restart). Each
action is plain code over exchanges with the modem: no threads, no serial, no MQTT."""
