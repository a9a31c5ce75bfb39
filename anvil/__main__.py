from anvil.main import main

raise SystemExit(main())
