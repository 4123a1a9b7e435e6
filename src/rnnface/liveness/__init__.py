"""Liveness: is the face in front of the camera live, or a printed photo held up to it?

`model` is the presentation-attack detector (a per-frame CNN whose features a GRU/LSTM integrates over frames),
`crop` cuts faces as it was trained (NUAA's eye normalization), `scoring` scores a clip window by window,
`check` runs it on photos and clips through the face detector, `active` is the head-turn challenge,
`authenticate` adds 1:1 against an enrolled person. `train` and `evaluate` are NUAA's protocol; `replay`
simulates printed-photo replays from stills.
"""
