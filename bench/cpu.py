"""The CPU benchmark; see rnnkit/bench/cpu.py. Usage: python bench/cpu.py [--repeat 5] [--json F]"""
from rnnkit.bench.cpu import main

if __name__ == "__main__":
    main()
