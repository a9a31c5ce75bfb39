from anvil.cli import entry

entry()
