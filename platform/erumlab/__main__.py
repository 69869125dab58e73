from erumlab.cli import main

raise SystemExit(main())
