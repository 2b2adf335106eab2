from authhooks.cli.main import app

app(prog_name="authhooks")
