"""What a lead is: field layouts, reading tables, mapping columns, phones, dates and checks."""
