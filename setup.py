"""ament_python package: `pip install .` and `colcon build` install the same tree."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'cell_control'

NODES = {
    'cell_sim': 'cell_control.nodes.cell_sim:main',
    'cell_sensors': 'cell_control.nodes.cell_sensors:main',
    'seam_sensor': 'cell_control.nodes.seam_sensor:main',
    'weld_adjuster': 'cell_control.nodes.weld_adjuster:main',
    'coordinator': 'cell_control.nodes.coordinator:main',
    'fleet_sim': 'cell_control.nodes.fleet_sim:main',
    'conveyor_driver': 'cell_control.nodes.conveyor_driver:main',
    'plant_gateway': 'cell_control.nodes.plant_gateway:main',
    'maintenance': 'cell_control.nodes.maintenance:main',
}

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/urdf', glob('urdf/*.xacro') + glob('urdf/*.yaml')),
        ('share/' + package_name + '/config', glob('config/*.*')),
        ('share/' + package_name + '/config/recipes', glob('config/recipes/*.yaml') + glob('config/recipes/*.csv')),
        ('share/' + package_name + '/config/ur5e', glob('config/ur5e/*.yaml')),
        ('share/' + package_name + '/config/seams', glob('config/seams/*.csv')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='cell_control maintainers',
    maintainer_email='cell-control@example.com',
    description='Robotic seam-welding work cell controller and simulation.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in NODES.items()]
        + ['cell-control = cell_control.cli:console_main'],
    },
)
