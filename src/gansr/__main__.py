from gansr.cli import main

raise SystemExit(main())
