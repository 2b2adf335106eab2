from authhooks.cli.main import run

run()
