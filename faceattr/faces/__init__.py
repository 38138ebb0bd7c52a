"""From a photo to aligned 64x64 faces: image loading, crop geometry, detection, alignment."""
