"""Using the datasets: variational MI estimators, theta regression and the paper's figures."""
