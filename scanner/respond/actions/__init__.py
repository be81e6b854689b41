"""Actions a playbook step `uses`: host.*, credentials.*, evidence.collect, notify.webhook and
command. Each is one class registered by name in `scanner.respond.actions.registry`."""
