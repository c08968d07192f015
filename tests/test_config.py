import pytest

from faderlib.celeba_facts import CELEBA_ATTRIBUTES
from faderlib.config import Attribute, ConfigError, ModelConfig, check_attributes, parse_attributes
from faderlib.errors import AttributeNameError, DataError


def test_presets_at_256_px():
    paper = ModelConfig.from_preset("paper", 256)
    official = ModelConfig.from_preset("official", 256)
    assert (paper.n_layers, paper.init_fm, paper.latent_shape) == (7, 16, (512, 2, 2))
    assert (official.n_layers, official.init_fm, official.latent_shape) == (6, 32, (512, 4, 4))


@pytest.mark.parametrize("size,paper_layers,official_layers", [(32, 4, 3), (64, 5, 4), (128, 6, 5), (256, 7, 6)])
def test_presets_keep_their_latent_side(size, paper_layers, official_layers):
    assert ModelConfig.from_preset("paper", size).n_layers == paper_layers
    assert ModelConfig.from_preset("official", size).n_layers == official_layers
    assert ModelConfig.from_preset("paper", size).latent_shape[1:] == (2, 2)
    assert ModelConfig.from_preset("official", size).latent_shape[1:] == (4, 4)


def test_attributes_keep_the_users_order_and_parse_categorical():
    c = ModelConfig.from_preset("official", 64, "Smiling,Hair.3,Eyeglasses")
    assert c.attribute_names == ["Smiling", "Hair", "Eyeglasses"]
    assert [a.n_values for a in c.attributes] == [2, 3, 2]
    assert c.n_attr_channels == 7
    c2 = ModelConfig.from_preset("official", 64, ["Young", "Male"])
    assert c2.attribute_names == ["Young", "Male"]  # not sorted


def test_round_trip_through_dict():
    c = ModelConfig.from_preset("paper", 128, ["Smiling", "Hair.4"], upsampling="pixelshuffle")
    again = ModelConfig.from_dict(c.to_dict())
    assert again == c
    assert c.to_dict()["attributes"] == ["Smiling", "Hair.4"]


@pytest.mark.parametrize("size", [0, 16, 48, 100, 512, 257, True])
def test_bad_image_size_says_what_is_allowed(size):
    with pytest.raises(ConfigError, match="power of two from 32 to 256"):
        ModelConfig.from_preset("official", size)


def test_too_many_layers_for_the_size():
    with pytest.raises(ConfigError, match=r"n_layers=6 does not fit 32 px.*1 to 5"):
        ModelConfig(image_size=32, n_layers=6)


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown preset 'oficial'.*paper, official.*Did you mean 'official'"):
        ModelConfig.from_preset("oficial", 64)


@pytest.mark.parametrize("spec", ["Hair.1", "Hair.x", "Smi ling", "", "Hair.", ".3"])
def test_malformed_attribute_spec(spec):
    with pytest.raises(ConfigError, match="attribute"):
        parse_attributes([spec])


def test_duplicate_and_empty_attribute_lists():
    with pytest.raises(ConfigError, match="listed twice: Male"):
        parse_attributes("Male,Smiling,Male")
    with pytest.raises(ConfigError, match="at least one attribute"):
        parse_attributes([])


def test_other_bad_settings():
    with pytest.raises(ConfigError, match="upsampling 'bilinear'.*convtranspose, upsampling, pixelshuffle"):
        ModelConfig(image_size=64, n_layers=4, upsampling="bilinear")
    with pytest.raises(ConfigError, match=r"lat_dis_dropout.*\[0, 1\)"):
        ModelConfig(image_size=64, n_layers=4, lat_dis_dropout=1.5)
    with pytest.raises(ConfigError, match="unknown model setting"):
        ModelConfig.from_dict({"image_size": 64, "n_layer": 4})


def test_attribute_spec_strings():
    assert Attribute("Smiling").spec == "Smiling"
    assert Attribute("Hair", 3).spec == "Hair.3"


def test_check_attributes():
    names = list(CELEBA_ATTRIBUTES)
    assert check_attributes(("Smiling", "Male"), names) == ["Smiling", "Male"]
    assert check_attributes("Young", names) == ["Young"]
    with pytest.raises(DataError) as err:
        check_attributes(["Smilling"], names)
    msg = str(err.value)
    assert "Unknown attribute 'Smilling'" in msg and "Did you mean 'Smiling'?" in msg
    assert "Wearing_Necktie" in msg  # lists the valid names
    with pytest.raises(DataError, match="Did you mean 'Eyeglasses'"):
        check_attributes(["eyeglasses"], names)
    with pytest.raises(DataError, match="twice"):
        check_attributes(["Male", "Male"], names)
    with pytest.raises(DataError, match="at least one"):
        check_attributes([], names)


def test_one_validator_one_error_type_for_attribute_names():
    """A configuration (no data set) and a data set's table check names the same way."""
    names = list(CELEBA_ATTRIBUTES)
    for bad in (["Male", "Male"], [], ["Smi ling"]):
        with pytest.raises(AttributeNameError) as from_config:
            parse_attributes(bad)
        with pytest.raises(AttributeNameError) as from_data:
            check_attributes(bad, names)
        # the same message, whoever asks; against a data set it also lists the valid names
        assert str(from_data.value).startswith(str(from_config.value))
    with pytest.raises(AttributeNameError, match="Unknown attribute 'Smilling'. Did you mean 'Smiling'"):
        parse_attributes("Smiling,Smilling", available=names)
    assert check_attributes("Hair.3", ["Hair", "Male"]) == ["Hair"]  # a categorical spec names its column
    assert [a.spec for a in parse_attributes("Male,Hair.3", available=["Hair", "Male"])] == ["Male", "Hair.3"]
    assert issubclass(AttributeNameError, ConfigError) and issubclass(AttributeNameError, DataError)
