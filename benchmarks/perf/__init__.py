"""vpd.benchmarks.perf"""
