from wgedge.cli import main

raise SystemExit(main())
