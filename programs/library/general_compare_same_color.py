"""Question: Do the cube and the sphere have the same color?
Answer: yes or no
Qtype: compare
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cube = image_patch.find("cube")[0]
    sphere = image_patch.find("sphere")[0]
    cube_color = cube.simple_query("What color is the cube?")
    sphere_color = sphere.simple_query("What color is the sphere?")
    return bool_to_yesno(cube_color == sphere_color)
