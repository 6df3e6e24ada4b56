"""Device protocols (codecs and transports over pyserial). Never imports rclpy."""
