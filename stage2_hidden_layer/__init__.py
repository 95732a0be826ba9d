"""Stage 2: one hidden layer of many neurons, 784 -> N -> 10."""
