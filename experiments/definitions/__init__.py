"""An experiment's definition: its fields, rules, planning and the protocol frozen at start."""
