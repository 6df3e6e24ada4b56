"""config/cell.rviz shows the cell from the latched description, the markers and the seam cloud by gap."""
import xml.etree.ElementTree as ET

import pytest
import yaml

from cell_control.cell.description import expand_xacro, share_dir
from cell_control.sim.interface import sensor_topics


@pytest.fixture(scope='module')
def displays() -> dict[str, dict]:
    with open(share_dir() / 'config' / 'cell.rviz', encoding='utf-8') as stream:
        config = yaml.safe_load(stream)
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == 'world'
    # by class; the marker displays by class and topic
    return {d['Class'] + ('@' + d['Topic']['Value'] if d['Class'].endswith('MarkerArray') else ''): d
            for d in config['Visualization Manager']['Displays']}


def test_robot_model_reads_the_latched_description(displays):
    model = displays['rviz_default_plugins/RobotModel']
    assert model['Description Source'] == 'Topic'
    assert model['Description Topic']['Value'] == '/robot_description'
    assert model['Description Topic']['Durability Policy'] == 'Transient Local'


def test_markers_and_seam_cloud_use_the_cell_topics(displays):
    # /cell/markers is the MuJoCo node's display topic (no simulation contract topic: not bridgeable)
    assert 'rviz_default_plugins/MarkerArray@/cell/markers' in displays
    # The coordinator's seams, programmed and as welded after the seam search: latched, so RViz gets the last ones.
    seams = displays['rviz_default_plugins/MarkerArray@/cell/seam_markers']['Topic']
    assert seams['Durability Policy'] == 'Transient Local' and seams['Reliability Policy'] == 'Reliable'
    types = {topic.name: topic.ros_type for topic in sensor_topics()}
    cloud = displays['rviz_default_plugins/PointCloud2']
    assert types[cloud['Topic']['Value']] == 'sensor_msgs/msg/PointCloud2'
    assert cloud['Topic']['Reliability Policy'] == 'Best Effort'     # sensor-data QoS
    assert (cloud['Color Transformer'], cloud['Channel Name']) == ('Intensity', 'gap')


def test_tf_frames_shown_exist_in_the_cell(displays):
    frames = displays['rviz_default_plugins/TF']['Frames']
    links = {link.get('name') for link in ET.fromstring(expand_xacro('cell')).findall('link')}
    shown = {name for name in frames if name != 'All Enabled'}
    assert shown and shown <= links
