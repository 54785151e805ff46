"""Serial sources: ASCII line frames and Modbus RTU polling over pyserial URLs."""
