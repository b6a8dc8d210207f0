"""Reports: tables, paper tables, the HTML page, figures, statistics, TensorBoard export."""
