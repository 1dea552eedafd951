from fleetbench.cli import main

main()
