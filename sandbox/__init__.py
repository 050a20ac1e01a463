"""vpd.sandbox"""
