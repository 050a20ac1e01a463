"""vpd.programs.library"""
