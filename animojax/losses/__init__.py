"""Training losses: PIRender's VGG19 perceptual/style loss and the pixel-pyramid demo loss."""
