from anvil.cli import main

raise SystemExit(main())
