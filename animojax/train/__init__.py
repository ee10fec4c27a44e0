"""Trainers (one readable module per kind of training) and their pure steps."""
