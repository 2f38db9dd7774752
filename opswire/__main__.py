from opswire.cli import main

main()
