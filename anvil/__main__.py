from anvil.main import entry

entry()
