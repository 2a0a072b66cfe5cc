"""shrinksim: how much will partial pooling shrink my group estimates?"""
