"""Motion capture from real videos: `capture` (FaceBoxes + 3DDFA_V2, batched and tracked),
`motion` (least-squares fit into a model's coefficient space, relative driving, smoothing) and
`label` (Deep3DFaceRecon-layout coefficient files for raw videos). Modules are imported by name:
`capture` loads Flax networks, which `motion`'s users may not need."""
