"""vpd.benchmarks"""
