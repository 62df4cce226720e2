"""Reading and writing files: PNG parameters, animations."""
