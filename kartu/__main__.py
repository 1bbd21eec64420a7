from kartu.cli import main

main()
