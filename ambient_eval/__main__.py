from ambient_eval.cli import main

main()
