"""Facts about the CelebA data set that several modules share (docs/paper_notes.md, 'CelebA')."""

#: The 40 attribute names, in the order of CelebA's ``list_attr_celeba.txt`` header.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
    "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)

#: Size of an aligned CelebA image (width, height).
IMAGE_WIDTH, IMAGE_HEIGHT = 178, 218

#: The reference crop keeps rows 20..197 (a 178x178 square).
CROP_TOP, CROP_BOTTOM = 20, 198

#: Official split sizes (train, valid, test) of the 202,599 images.
SPLIT_SIZES = (162_770, 19_867, 19_962)
SPLIT_NAMES = ("train", "valid", "test")
