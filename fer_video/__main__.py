from fer_video.cli import main

raise SystemExit(main())
