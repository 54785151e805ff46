#!/bin/sh
# Builds the password file from the environment at start (secrets stay out of the image and repo).
set -eu
: > /mosquitto/config/passwd
mosquitto_passwd -b /mosquitto/config/passwd collector "$MQTT_COLLECTOR_PASSWORD"
mosquitto_passwd -b /mosquitto/config/passwd gw-plant-a-1 "$MQTT_GATEWAY_A_PASSWORD"
mosquitto_passwd -b /mosquitto/config/passwd gw-plant-b-1 "$MQTT_GATEWAY_B_PASSWORD"
chmod 0700 /mosquitto/config/passwd
exec mosquitto -c /mosquitto/config/mosquitto.conf
