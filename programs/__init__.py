"""vpd.programs"""
