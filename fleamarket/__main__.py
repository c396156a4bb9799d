from fleamarket.cli import main

raise SystemExit(main())
