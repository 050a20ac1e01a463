"""vpd.distill"""
