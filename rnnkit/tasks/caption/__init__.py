"""Image captioning: a convolutional encoder and a recurrent decoder with soft attention over the image
("Show, Attend and Tell") or the image as the first input ("Show and Tell"); ``rnnkit train caption``,
``rnnkit caption RUN img.jpg --beam 5``."""
