"""The collector as a Sparkplug B host application: births, aliases, sequence numbers, STATE."""
