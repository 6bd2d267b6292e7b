from gansr.cli import console

console()
