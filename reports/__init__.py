"""Charts and the HTML report. Reads result records only; knows nothing of how they were made."""
