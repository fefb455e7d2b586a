from crossrank.client.cli import main

main()
